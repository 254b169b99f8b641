/** Workflow resources for other Pulumi projects (package entry "./workflows"); one per sibling runbook. */
export {};
