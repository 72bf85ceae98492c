/**
 * Where backups may go (docs/disaster-recovery.md). Sites are declared by the
 * operator: the appliance's in `site`, each target's when it is registered. Coffre cannot see
 * where a server really stands; it enforces the declared policy at registration and at every run.
 */
export interface Site {
  /** ISO 3166-1 alpha-2 */
  jurisdiction: string;
  lat: number;
  lon: number;
}

export interface GeoPolicy {
  /** the minimum great-circle distance between the appliance and a target */
  minDistanceKm: number;
  /** jurisdictions allowed besides the appliance's own (explicit operator choice) */
  allowedJurisdictions: readonly string[];
}

/** IUGG mean Earth radius */
const EARTH_RADIUS_KM = 6371.0088;
const rad = (deg: number) => (deg * Math.PI) / 180;

/** Great-circle distance in km (haversine; well-conditioned for short and long distances). */
export function greatCircleKm(a: Pick<Site, 'lat' | 'lon'>, b: Pick<Site, 'lat' | 'lon'>): number {
  const dLat = rad(b.lat - a.lat);
  const dLon = rad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_KM * Math.asin(Math.min(1, Math.sqrt(h)));
}

export interface GeoVerdict {
  ok: boolean;
  distanceKm: number;
  /** one sentence per broken rule */
  problems: string[];
}

/** Checks a target's declared site against the appliance's site and the policy. */
export function checkTargetSite(appliance: Site, target: Site, policy: GeoPolicy): GeoVerdict {
  const problems: string[] = [];
  const home = appliance.jurisdiction.toUpperCase();
  const there = target.jurisdiction.toUpperCase();
  if (there !== home && !policy.allowedJurisdictions.map((j) => j.toUpperCase()).includes(there)) {
    problems.push(
      `target jurisdiction ${there} differs from the appliance's (${home}) and is not in backup.allowedJurisdictions`,
    );
  }
  const distanceKm = greatCircleKm(appliance, target);
  if (distanceKm < policy.minDistanceKm) {
    problems.push(
      `target is ${distanceKm.toFixed(1)} km from the appliance, closer than backup.minDistanceKm (${policy.minDistanceKm} km)`,
    );
  }
  return { ok: problems.length === 0, distanceKm, problems };
}

/** Validates declared coordinates and code (CLI input). Returns problems, empty when valid. */
export function siteProblems(s: Partial<Site>): string[] {
  const out: string[] = [];
  if (typeof s.jurisdiction !== 'string' || !/^[A-Z]{2}$/.test(s.jurisdiction))
    out.push('jurisdiction must be an ISO 3166-1 alpha-2 code such as FR');
  if (typeof s.lat !== 'number' || !Number.isFinite(s.lat) || s.lat < -90 || s.lat > 90)
    out.push('lat must be a number between -90 and 90');
  if (typeof s.lon !== 'number' || !Number.isFinite(s.lon) || s.lon < -180 || s.lon > 180)
    out.push('lon must be a number between -180 and 180');
  return out;
}
