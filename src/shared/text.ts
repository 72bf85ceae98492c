/**
 * Invisible format characters that make a name look like another or hide part of it (P8):
 * zero-width space, joiners and direction marks (U+200B–U+200F), word joiner and invisible
 * operators (U+2060–U+2064), the byte-order mark / zero-width no-break space (U+FEFF), the Arabic
 * letter mark (U+061C), and the bidi embeddings, overrides and isolates (U+202A–U+202E,
 * U+2066–U+2069). Names of documents, folders and workspaces refuse them.
 */
export const INVISIBLE_FORMAT = /[\u200b-\u200f\u2060-\u2064\ufeff\u061c\u202a-\u202e\u2066-\u2069]/u;

export const hasInvisibleFormat = (s: string): boolean => INVISIBLE_FORMAT.test(s);
