//! The tracer library: where `ramscope trace` finds `libramscope_trace.so`.
