/** Workflow resources for other Pulumi projects (package entry "./workflows"); one per sibling runbook. */
export { BackendAiCluster, type BackendAiClusterArgs, type BackendAiHostArgs } from "./backendai/resource";
export { planPath, checkHop, parseVersion, type Catalog, type PlanResult, type Release, type Skipped } from "./backendai/versions";
export { shippedCatalog, bundledCatalog, loadCatalog, readIndexCatalog } from "./backendai/catalog";
export { CodeOceanVpc, type CodeOceanVpcArgs, type CodeOceanCompanionStackArgs, type MaintenanceHookArgs } from "./codeocean-vpc/resource";
export { OpenEdxFleet, type OpenEdxFleetArgs } from "./openedx/resource";
export { UtilitarianService, type UtilitarianServiceArgs } from "./utilitarian/resource";
export type { SshArgs } from "../lib/dynamicProvider";
