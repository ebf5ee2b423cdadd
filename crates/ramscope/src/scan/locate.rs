//! Finding the tree to scan (placeholder until written).
