/**
 * Saves text made in the page (a report, an export) through the browser's own download manager:
 * a Blob URL on a temporary link, revoked once the download has started. Nothing is kept.
 */
export function saveText(text: string, filename: string, type: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
