"""The projection runtime: what feeds the pure read models of `projections/` from the log and stores them."""
