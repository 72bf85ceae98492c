import { describe, expect, it } from 'vitest';
import { checkTargetSite, greatCircleKm, siteProblems } from '../../src/backup/geo.js';

const paris = { jurisdiction: 'FR', lat: 48.8566, lon: 2.3522 };
const lyon = { jurisdiction: 'FR', lat: 45.764, lon: 4.8357 };
const versailles = { jurisdiction: 'FR', lat: 48.8049, lon: 2.1204 };
const brussels = { jurisdiction: 'BE', lat: 50.8503, lon: 4.3517 };
const policy = { minDistanceKm: 100, allowedJurisdictions: [] };

describe('great-circle distance', () => {
  it('matches known distances', () => {
    expect(greatCircleKm(paris, lyon)).toBeCloseTo(391.5, 0);
    expect(greatCircleKm(paris, paris)).toBe(0);
    // antipodes: half the circumference
    expect(greatCircleKm({ lat: 0, lon: 0 }, { lat: 0, lon: 180 })).toBeCloseTo(20015.1, 0);
    // across the antimeridian: Fiji to Samoa is ~1150 km, not ~39000
    expect(greatCircleKm({ lat: -18.1, lon: 178.4 }, { lat: -13.8, lon: -171.8 })).toBeLessThan(1200);
  });
});

describe('target site policy', () => {
  it('accepts a distant target in the same jurisdiction', () => {
    const v = checkTargetSite(paris, lyon, policy);
    expect(v.ok).toBe(true);
    expect(v.problems).toEqual([]);
  });

  it('refuses a target closer than the minimum distance', () => {
    const v = checkTargetSite(paris, versailles, policy);
    expect(v.ok).toBe(false);
    expect(v.distanceKm).toBeLessThan(20);
    expect(v.problems.join()).toMatch(/closer than backup.minDistanceKm \(100 km\)/);
  });

  it('refuses another jurisdiction unless explicitly allowed', () => {
    expect(checkTargetSite(paris, brussels, policy).problems.join()).toMatch(/jurisdiction BE differs/);
    expect(checkTargetSite(paris, brussels, { ...policy, allowedJurisdictions: ['BE'] }).ok).toBe(true);
  });

  it('reports both problems at once', () => {
    const v = checkTargetSite(paris, { ...versailles, jurisdiction: 'DE' }, policy);
    expect(v.problems).toHaveLength(2);
  });

  it('validates declared sites', () => {
    expect(siteProblems(paris)).toEqual([]);
    expect(siteProblems({ jurisdiction: 'fr', lat: 91, lon: Number.NaN })).toHaveLength(3);
  });
});
