//! `burrow-bench`: the load generator.
