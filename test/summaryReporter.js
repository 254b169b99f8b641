// Prints one machine-readable line at the end of a jest run, e.g. "jest: 42 passed, 0 failed, 0 skipped (3 suites failed)".
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numFailedTestSuites, numRuntimeErrorTestSuites } = results;
    const broken = numFailedTestSuites + numRuntimeErrorTestSuites;
    process.stderr.write(
      `jest: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests} skipped` +
        (broken ? ` (${broken} suites failed)` : "") + "\n",
    );
  }
}
module.exports = SummaryReporter;
