import { startSandbox, type Sandbox } from "../sandbox";
import { startUtilitarian, type UtilitarianFixture, POSTER_QUEUE } from "../sandbox/utilitarian";
let bed: Sandbox; let u: UtilitarianFixture;
beforeAll(async () => { const t = Date.now(); bed = await startSandbox({ aws: false, pulumi: false }); u = await startUtilitarian(bed); console.log("setup ms", Date.now() - t); }, 900_000);
afterAll(async () => { await u?.stop(); await bed?.stop(); }, 300_000);
test("bed", async () => {
  console.log(JSON.stringify(u.services()), JSON.stringify(await u.apiVersion()));
  u.publish(5, "hello");
  for (let i = 0; i < 40 && u.rabbitmq.depth(POSTER_QUEUE) !== 0; i++) await new Promise((r) => setTimeout(r, 500));
  console.log("depth", u.rabbitmq.depth(POSTER_QUEUE), u.postgres.query("SELECT count(*) FROM meters_postedmessage"));
}, 300_000);
