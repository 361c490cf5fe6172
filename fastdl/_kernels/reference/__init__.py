"""Plain-numpy float64 references: the specification every fast kernel is tested against."""
