"""The `allava` command: every tool of the project as a subcommand."""
