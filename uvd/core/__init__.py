"""Pipeline plumbing every stage shares (Beam): options, tagged outputs and the dead letter, metrics
and progress, table IO, files, runners. No stage logic lives here."""
