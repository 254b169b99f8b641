import { UpgradeError } from "../../lib/errors";
import { postgresVersion } from "./remote";
import type { ClusterContext } from "./runbook";
import { isNewNumbering, lineOf, parseVersion, type Parsed } from "./versions";

/**
 * Which steps a hop has, decided from its two releases (the steps themselves are in runbook.ts),
 * so the runbook's list stays one literal list with `when:` predicates.
 */

/** One move of a planned path (versions.ts), from a release to the next allowed one. */
export interface Hop {
  from: string;
  to: string;
}

export const isMajor = (hop: Hop) => lineOf(hop.from) !== lineOf(hop.to);

/** apply-missing-revisions: upstream bundles revision histories for the old lines only (none since 24.12, #5030). */
export const needsMissingRevisions = (hop: Hop) => isMajor(hop) && !isNewNumbering(parseVersion(hop.to) as Parsed);

/** Release pairs with their own steps (RUNBOOKS.md): the schema must sit at `revision` before the new package. */
export interface PairRule {
  revision: string;
  why: string;
  /** Refuses the hop when the hosts are not ready for it. */
  precondition?: (ctx: ClusterContext, hop: Hop) => Promise<void>;
  /** Not automated, said in the progress. */
  manual?: string;
}

export const PAIR_RULES: Record<string, PairRule> = {
  "23.09->24.03": {
    revision: "85615e005fa3",
    why: "24.03's migration tree branches from 23.09's at 85615e005fa3; later 23.09 revisions are re-applied by apply-missing-revisions",
  },
  "24.03->24.09": {
    revision: "3596bc12ec09",
    why: "24.09's migration tree continues from 3596bc12ec09",
    async precondition(ctx, hop) {
      const version = await postgresVersion(ctx.manager);
      if (version < 160000) {
        throw new UpgradeError({
          what: `upgrade ${hop.from} → ${hop.to}`,
          why: `24.09 needs PostgreSQL 16; the manager's database runs ${Math.floor(version / 10000)}`,
          hint: "move the database to PostgreSQL 16 (pg_dump, then restore into 16) and run the upgrade again",
          exitCode: 3,
          permanent: true,
        });
      }
    },
  },
};

export const pairRule = (hop: Hop): PairRule | undefined => PAIR_RULES[`${lineOf(hop.from)}->${lineOf(hop.to)}`];
