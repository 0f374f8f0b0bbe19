-- Read models: disposable, rebuilt from the log. `doc` is the JSON the API serves; the other columns
-- exist to filter and page. `position` is the log position of the last event applied.
CREATE TABLE installation_view (
    installation_id text PRIMARY KEY,
    project_id      text,
    provider        text,
    integration_id  text,
    group_ref       text,
    connection_id   text,
    deleted         boolean NOT NULL DEFAULT false,
    position        bigint  NOT NULL,
    doc             jsonb   NOT NULL
);
CREATE INDEX installation_view_project_idx ON installation_view (project_id, installation_id);
CREATE INDEX installation_view_connection_idx ON installation_view (connection_id);

CREATE TABLE connection_view (
    connection_id text PRIMARY KEY,
    project_id    text,
    provider      text,
    group_ref     text,
    status        text   NOT NULL,
    position      bigint NOT NULL,
    doc           jsonb  NOT NULL
);
CREATE INDEX connection_view_project_idx ON connection_view (project_id, connection_id);

CREATE TABLE destination_view (
    destination_id text PRIMARY KEY,
    project_id     text,
    disabled       boolean NOT NULL DEFAULT false,
    position       bigint  NOT NULL,
    doc            jsonb   NOT NULL
);
CREATE INDEX destination_view_project_idx ON destination_view (project_id, destination_id);
