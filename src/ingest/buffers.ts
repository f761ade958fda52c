/**
 * How much each stage of an incoming stream may hold: one chunk of Node's HTTP parser (64 KiB). Chunks
 * held longer live through more young collections and are promoted; their memory then waits for a full
 * collection. Measured with four concurrent 1 GiB uploads: with 256 KiB per stage (and 2 MiB write
 * batches) up to 105 MB of array buffers, with 64 KiB (and 1 MiB) 47 MB, at the same speed and CPU.
 */
export const INGEST_BUFFER_BYTES = 64 * 1024;
