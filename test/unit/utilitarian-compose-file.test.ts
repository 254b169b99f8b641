import { parseImage, readComposeFile, rewriteImageTags } from "../../workflows/utilitarian/composeFile";

const FILE = `# ops-managed
name: utilitarian

x-utilitarian: &utilitarian
  # the release
  image: "quay.io/pwit/utilitarian:1.0.0"   # bump with the runbook
  network_mode: host

services:
  utilitarian_api:
    <<: *utilitarian
    command: ["python3", "manage.py", "runserver"]
  utilitarian-worker:
    <<: *utilitarian
  utilitarian-beat:
    <<: *utilitarian
  utilitarian_poster:
    image: quay.io/pwit/utilitarian-poster:1.0.0  # own cycle
`;

test("parseImage splits repository and tag (registry ports and digests too)", () => {
  expect(parseImage("quay.io/pwit/utilitarian:1.0.0")).toEqual({ repository: "quay.io/pwit/utilitarian", tag: "1.0.0" });
  expect(parseImage("127.0.0.1:5000/pwit/u")).toEqual({ repository: "127.0.0.1:5000/pwit/u", tag: "" });
  expect(parseImage("quay.io/pwit/u@sha256:abc")).toEqual({ repository: "quay.io/pwit/u", tag: "" });
});

test("images through an anchor are read per service", () => {
  const file = readComposeFile(FILE, "compose.yaml");
  expect(file.services).toEqual(["utilitarian_api", "utilitarian-worker", "utilitarian-beat", "utilitarian_poster"]);
  expect(file.image("utilitarian-beat")).toBe("quay.io/pwit/utilitarian:1.0.0");
  expect(file.image("utilitarian_poster")).toBe("quay.io/pwit/utilitarian-poster:1.0.0");
});

test("an anchor only the chosen services merge is rewritten in place: the rest of the file byte for byte", () => {
  const out = rewriteImageTags(readComposeFile(FILE, "compose.yaml"), ["utilitarian_api", "utilitarian-worker", "utilitarian-beat"], "2.0.0");
  expect(out).toBe(FILE.replace('"quay.io/pwit/utilitarian:1.0.0"', '"quay.io/pwit/utilitarian:2.0.0"'));
});

test("an anchor shared with a service that keeps its image: the chosen services get their own image key", () => {
  const out = rewriteImageTags(readComposeFile(FILE, "compose.yaml"), ["utilitarian_api"], "2.0.0");
  const after = readComposeFile(out, "compose.yaml");
  expect(after.image("utilitarian_api")).toBe("quay.io/pwit/utilitarian:2.0.0");
  expect(after.image("utilitarian-worker")).toBe("quay.io/pwit/utilitarian:1.0.0");
  expect(out).toContain("# bump with the runbook");
  expect(out).toBe(FILE.replace("  utilitarian_api:\n    <<: *utilitarian\n", "  utilitarian_api:\n    <<: *utilitarian\n    image: quay.io/pwit/utilitarian:2.0.0\n"));
});

test("a missing service or unparseable YAML is refused with the key named", () => {
  expect(() => rewriteImageTags(readComposeFile(FILE, "compose.yaml"), ["dlms_processor"], "2.0.0")).toThrow(/no service dlms_processor in it/);
  expect(() => readComposeFile("services:\n  a: [\n", "compose.yaml")).toThrow(/not valid YAML/);
});
