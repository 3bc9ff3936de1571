"""Model adapters shipped with nlbsuite. Each module defines one :class:`ModelAdapter`."""
