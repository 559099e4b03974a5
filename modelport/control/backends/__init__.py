"""Where replicas run: local processes (plain, or forked from a pre-warmed zygote)."""
