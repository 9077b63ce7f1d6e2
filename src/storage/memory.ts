/**
 * In-process storage, the default: see {@link MemoryStorage}.
 *
 * @module
 */
export { MemoryStorage } from './memory/storage.js';
