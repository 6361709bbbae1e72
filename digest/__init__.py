"""digest: one short, well-ranked digest a day from many feeds."""

__version__ = "0.1.0"
