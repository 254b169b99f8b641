// The test bed runs on Node 20 on purpose (README: the Node/SDK decision); the AWS SDK's notice
// that its 2027 releases need Node 22 is known and would only bury the test output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
