"""AR2 itself (paper Eq. 1, Eq. 2, Algorithm 1): CAMs, the alignment loss, the repair model, its schedule and callbacks."""
