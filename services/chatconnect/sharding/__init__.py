"""Virtual shards, the shard map that homes them in regions, and its epoch fence."""
