-- Alerts: who is told of issue transitions (a read model of the log), the transitions waiting to be told
-- (an outbox the live runners write in the transaction of the issue change), and each (transition,
-- subscription) delivery with its attempts. A rebuild writes no outbox row, so it sends nothing.

CREATE TABLE alert_subscription_view (
    subscription_id text PRIMARY KEY,
    status          text   NOT NULL,  -- active | disabled | deleted
    position        bigint NOT NULL,
    doc             jsonb  NOT NULL
);

-- Written with the views whose issues changed; the delivering process fans each row out to the matching
-- subscriptions as deliveries and deletes it, in one transaction.
CREATE TABLE alert_outbox (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position       bigint      NOT NULL,  -- the log position of the event that changed the issue
    entity         text        NOT NULL,
    entity_id      text        NOT NULL,
    code           text        NOT NULL,
    transition     text        NOT NULL CHECK (transition IN ('opened', 'reopened', 'resolved')),
    project_id     text,
    integration_id text,
    occurred_at    timestamptz NOT NULL,  -- when the tracker received that event
    issue          jsonb       NOT NULL,  -- the issue as GET /v1/issues serves it
    recorded_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per (transition, subscription): `id` is the webhook-id every attempt carries, so a receiver can
-- dedupe; the body is built once, at fan-out, and every attempt sends the same bytes.
CREATE TABLE alert_deliveries (
    id              text PRIMARY KEY,
    subscription_id text        NOT NULL,
    position        bigint      NOT NULL,
    entity          text        NOT NULL,
    entity_id       text        NOT NULL,
    code            text        NOT NULL,
    transition      text        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    body            bytea       NOT NULL,
    status          text        NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'suppressed', 'cancelled')),
    outcome         text,  -- why it settled as it did, in one line
    next_attempt_at timestamptz NOT NULL,
    attempt_count   integer     NOT NULL DEFAULT 0,
    attempts        jsonb       NOT NULL DEFAULT '[]',  -- [{at, statusCode, error, durationMs, response}]
    created_at      timestamptz NOT NULL DEFAULT now(),
    settled_at      timestamptz
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at, position) WHERE status = 'pending';
CREATE INDEX alert_deliveries_newest_idx ON alert_deliveries (created_at DESC, id DESC);
CREATE INDEX alert_deliveries_issue_idx ON alert_deliveries (subscription_id, entity, entity_id, code, position);

-- Since when each subscription's deliveries have failed without a success between: past
-- TRACKER_ALERT_FAILING_AFTER the delivering process records it in the subscription's stream.
CREATE TABLE alert_subscription_state (
    subscription_id   text PRIMARY KEY,
    failing_since     timestamptz,
    last_error        text,
    last_delivered_at timestamptz
);
