/**
 * The defaults of `emu image publish`, apart from its code so the command line can show
 * them without loading it.
 *
 * @module
 */

/**
 * The zstd level releases are compressed with: the best size for the time among 1, 3, 9
 * and 19 on an uncompressed qcow2 of the demo stack (BENCHMARKS.md, "Publishing").
 */
export const PUBLISH_ZSTD_LEVEL = 3;

/**
 * Unless told a level, a disk that zstd shrinks by less than this fraction is published
 * as a plain `.qcow2`: a qcow2 whose clusters are already compressed (as `emu image
 * build` writes them) gains about 1% and would cost every pull a second pass over the
 * disk, while a plain one is moved into place from its verified download.
 */
export const MIN_ZSTD_SAVING = 0.05;
