"""Model architectures WildBench builds itself (torch only)."""
