"""Training runs: algorithm configs, the chunked jitted loop with Orbax checkpoints, and the CLI."""
