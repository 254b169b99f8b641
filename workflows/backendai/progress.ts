/** Moved to lib/ (every workflow reports progress the same way). */
export * from "../../lib/progress";
