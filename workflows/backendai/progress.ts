/** Moved to lib/progress.ts (every workflow reports progress the same way). */
export { createProgress, type Progress } from "../../lib/progress";
