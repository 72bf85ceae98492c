import * as OTPAuth from 'otpauth';

/** TOTP codes as the person's authenticator app makes them; never the same time step twice (M1) */
export class Authenticator {
  private lastStep = -1;
  /** `after`: the app this one replaces (the server accepts each time step once per user, whichever secret) */
  constructor(
    private readonly secret: string,
    after?: Authenticator,
  ) {
    this.lastStep = after?.lastStep ?? -1;
  }
  async code(): Promise<string> {
    let step = Math.floor(Date.now() / 30_000);
    if (step <= this.lastStep) {
      await new Promise((r) => setTimeout(r, (this.lastStep + 1) * 30_000 - Date.now() + 200));
      step = Math.floor(Date.now() / 30_000);
    }
    this.lastStep = step;
    return new OTPAuth.TOTP({
      secret: OTPAuth.Secret.fromBase32(this.secret),
      digits: 6,
      period: 30,
      algorithm: 'SHA1',
    }).generate({ timestamp: step * 30_000 + 1000 });
  }
}
