/** The library version, sent in the default User-Agent. Kept in step with package.json by a test. */
export const VERSION = '0.1.0';
