"""A minimal ``awsglue`` for local Python shell jobs: only ``awsglue.utils.getResolvedOptions``."""
