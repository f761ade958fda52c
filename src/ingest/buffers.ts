/**
 * How much each stage of an incoming stream may hold. Small enough that four concurrent multi-GiB uploads
 * stay well inside the memory budget, large enough that per-chunk costs do not dominate.
 */
export const INGEST_BUFFER_BYTES = 256 * 1024;
