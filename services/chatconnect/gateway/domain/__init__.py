"""Connection logic: admission control and in-order, windowed inbox delivery."""
