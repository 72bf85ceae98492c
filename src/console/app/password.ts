/**
 * Live feedback that mirrors the server's password rules: length in code
 * points, 3 of 4 character classes, no word tied to the account. The server stays the judge: it
 * also checks its blocklist of common passwords, whose answer the form shows after submitting.
 */
export interface PolicyRules {
  minLength: number;
  maxLength: number;
  minClasses: number;
}

export const DEFAULT_RULES: PolicyRules = { minLength: 10, maxLength: 128, minClasses: 3 };

export interface Check {
  id: string;
  label: string;
  met: boolean;
}

export const codePoints = (s: string): number => [...s].length;

export function classesOf(p: string): number {
  return [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{Ll}\p{Lu}\p{Nd}]/u].filter((r) => r.test(p)).length;
}

export function checkPassword(p: string, rules: PolicyRules, context: readonly string[] = []): Check[] {
  const n = codePoints(p);
  const lower = p.normalize('NFKC').toLowerCase();
  const words = ['coffre', ...context]
    .map((w) => w.normalize('NFKC').toLowerCase().trim())
    .filter((w) => w.length >= 4);
  const checks: Check[] = [
    {
      id: 'length',
      label: `${rules.minLength} to ${rules.maxLength} characters`,
      met: n >= rules.minLength && n <= rules.maxLength,
    },
  ];
  if (rules.minClasses > 0) {
    checks.push({
      id: 'classes',
      label: `${rules.minClasses} of 4 kinds: lower-case, upper-case, digits, other characters`,
      met: classesOf(p) >= rules.minClasses,
    });
  }
  checks.push({
    id: 'context',
    label: 'not your user name, the product or the organisation',
    met: n > 0 && !words.some((w) => lower.includes(w)),
  });
  return checks;
}
