/**
 * The texts users receive. A link or a one-time code is the only secret a message may carry, and
 * never a password (P6).
 */
export const notices = {
  enrol: (username: string, url: string, hours: number) => ({
    subject: 'Your Coffre account',
    text: `Hello ${username},\n\nAn account was created for you on Coffre. Choose your password here (the link works once and expires in ${hours} hours):\n\n${url}\n\nIf you did not expect this message, ignore it.\n`,
  }),
  reset: (username: string, url: string, hours: number) => ({
    subject: 'Reset your Coffre password',
    text: `Hello ${username},\n\nSomeone asked to reset the password of your Coffre account. To choose a new password, open this link (it works once and expires in ${hours} hours):\n\n${url}\n\nIf it was not you, ignore this message: your password is unchanged.\n`,
  }),
  passwordChanged: (username: string, at: string) => ({
    subject: 'Your Coffre password was changed',
    text: `Hello ${username},\n\nThe password of your Coffre account was changed on ${at} (UTC).\nIf it was not you, contact your administrator at once.\n`,
  }),
  code: (code: string, minutes: number) => ({
    subject: 'Your Coffre sign-in code',
    text: `Your Coffre sign-in code is ${code}. It works once, for this sign-in only, for ${minutes} minutes.`,
  }),
  mfaLocked: (username: string, minutes: number, at: string) => ({
    subject: 'Your Coffre second factor was locked',
    text: `Hello ${username},\n\nOn ${at} (UTC), too many wrong sign-in codes were entered for your Coffre account, so its second factor is locked for ${minutes} minutes.\nWhoever entered them knew your password. If it was not you, change your password as soon as you can and tell your administrator.\n`,
  }),
  ownerAlert: (owner: string, member: string, what: string) => ({
    subject: 'Coffre: an administrator acted on a member of your workspace',
    text: `Hello ${owner},\n\nAn administrator acted on the account ${member}, a member of a workspace you own: ${what}.\nIf you did not expect this, check the workspace's members and contact your security officer.\n`,
  }),
  reviewReminder: (due: string) => ({
    subject: 'Coffre access review pending',
    text: `An access review is waiting for your decisions (due ${due}). Sign in to Coffre to confirm or revoke each access.\n`,
  }),
};
