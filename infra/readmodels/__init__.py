"""Read models: tables, projections that keep them, and the queries that read them."""
