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
  /**
   * The code of the current time step, or once that step is used, of the next one: the server
   * accepts one step of drift either way (as from a phone whose clock runs a little fast), so two
   * sign-ins in a row need not wait for the next 30 seconds. Only a third waits.
   */
  async code(): Promise<string> {
    const current = () => Math.floor(Date.now() / 30_000);
    const step = Math.max(current(), this.lastStep + 1);
    if (step > current() + 1) await new Promise((r) => setTimeout(r, (step - 1) * 30_000 - Date.now() + 200));
    this.lastStep = step;
    return new OTPAuth.TOTP({
      secret: OTPAuth.Secret.fromBase32(this.secret),
      digits: 6,
      period: 30,
      algorithm: 'SHA1',
    }).generate({ timestamp: step * 30_000 + 1000 });
  }
}
