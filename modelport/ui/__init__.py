"""Pages for people, served by ``modelport up`` behind the same login as everything else."""
