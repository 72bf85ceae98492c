import { cidrFamily, seedHostnames, type Seed } from './seed.js';

/** the first administrator's enrolment link, for operators with the "appliance" sudo rule */
export const SHOW_ENROL_LINK = '/usr/local/sbin/coffre-firstboot --enrolment-link';

/** Pure renderers: the OS files a seed produces (tested without a machine). */

export function hostsFile(s: Seed): string {
  const names = seedHostnames(s).join(' ');
  return `127.0.0.1\tlocalhost\n127.0.1.1\t${names}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n`;
}

/** systemd-networkd file for a static address; undefined for DHCP (the image's default file stays). */
export function staticNetwork(s: Seed): string | undefined {
  const n = s.network;
  if (n.mode !== 'static') return undefined;
  const lines = [
    '# written by coffre-firstboot',
    '[Match]',
    n.interface ? `Name=${n.interface}` : 'Name=en* eth*',
    '',
    '[Network]',
    `Address=${n.address}`,
  ];
  if (n.gateway) lines.push(`Gateway=${n.gateway}`);
  for (const d of n.dns) lines.push(`DNS=${d}`);
  lines.push('IPv6AcceptRA=no', 'LinkLocalAddressing=ipv6');
  return lines.join('\n') + '\n';
}

/** nftables elements for the sets of /etc/nftables.conf (https_v4/6, mgmt_v4/6). */
export function firewallSite(s: Seed): string {
  const split = (list: string[]) => ({
    v4: list.filter((c) => cidrFamily(c) === 4),
    v6: list.filter((c) => cidrFamily(c) === 6),
  });
  const h = split(s.firewall.httpsFrom);
  const m = split(s.firewall.sshFrom);
  const out = ['# written by coffre-firstboot: who may reach HTTPS and SSH (see /etc/nftables.conf)'];
  const add = (set: string, items: string[]) => {
    if (items.length) out.push(`add element inet coffre ${set} { ${items.join(', ')} }`);
  };
  add('https_v4', h.v4);
  add('https_v6', h.v6);
  add('mgmt_v4', m.v4);
  add('mgmt_v6', m.v6);
  return out.join('\n') + '\n';
}

export function chronySources(s: Seed): string | undefined {
  if (!s.ntp) return undefined;
  return ['# written by coffre-firstboot', ...s.ntp.map((n) => `server ${n} iburst`)].join('\n') + '\n';
}

/** sudo rules: "appliance" operators may run the coffre tools and read logs; "full" ones anything. */
export function sudoers(s: Seed): string {
  const lines = ['# written by coffre-firstboot (operators log in with SSH keys only; they have no password)'];
  for (const o of s.operators) {
    if (o.sudo === 'full') lines.push(`${o.name} ALL=(ALL:ALL) NOPASSWD: ALL`);
    else
      lines.push(
        `${o.name} ALL=(root) NOPASSWD: /usr/local/bin/coffre, /usr/local/sbin/coffre-update, ${SHOW_ENROL_LINK}, /usr/bin/systemctl status coffre.service, /usr/bin/systemctl restart coffre.service, /usr/bin/journalctl, /usr/sbin/nft list ruleset`,
      );
  }
  return lines.join('\n') + '\n';
}
