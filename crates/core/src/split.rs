//! Exact splits of an amount of minor units into parts that add up to the whole.
