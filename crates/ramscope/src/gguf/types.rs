//! ggml tensor types: how many bytes a block of how many elements takes.
//!
//! Ids from `ggml/include/ggml.h:390-433`, block sizes from `ggml/src/ggml.c:632-923`
//! (`type_traits`), bytes per block measured as `sizeof(block_*)` of `ggml/src/ggml-common.h`
//! compiled as C, all at llama.cpp 0c1e570 (the sources of llama-cpp-python 0.3.36). Ids 4, 5
//! and 31–33, 36–38 were removed from ggml and are refused as unknown.

/// (id, name, elements per block, bytes per block).
pub const TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
    (42, "Q2_0", 64, 18),
];

/// The type with this id: (name, elements per block, bytes per block).
pub fn lookup(id: u32) -> Option<(&'static str, u64, u64)> {
    TYPES
        .iter()
        .find(|t| t.0 == id)
        .map(|&(_, name, block, bytes)| (name, block, bytes))
}

/// Bytes of `elements` elements of type `id`; None when the type is unknown, the count is not
/// a whole number of blocks, or the product overflows.
pub fn tensor_bytes(id: u32, elements: u64) -> Option<u64> {
    let (_, block, bytes) = lookup(id)?;
    if elements % block != 0 {
        return None;
    }
    (elements / block).checked_mul(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_arithmetic() {
        // 4096 × 4096 in Q4_K: 65,536 blocks of 144 B = 9,437,184 B (4.5 bits per weight).
        assert_eq!(tensor_bytes(12, 4096 * 4096), Some(9_437_184));
        assert_eq!(tensor_bytes(0, 10), Some(40));
        assert_eq!(tensor_bytes(8, 64), Some(68));
        // Not a whole number of 32-element blocks.
        assert_eq!(tensor_bytes(2, 33), None);
        // Removed and unknown ids.
        assert_eq!(tensor_bytes(4, 32), None);
        assert_eq!(tensor_bytes(99, 1), None);
        assert_eq!(tensor_bytes(27, u64::MAX), None);
    }

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<u32> = TYPES.iter().map(|t| t.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), TYPES.len());
    }
}
