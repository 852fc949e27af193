//! Attribution models: which partner touches earned a conversion, and how much.
