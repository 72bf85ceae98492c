import { render } from 'preact';
import './styles.css';
import { App } from './app.js';
import { captureLinkToken } from './router.js';
import { browserLanguage, setLanguage } from './i18n/index.js';

const root = document.getElementById('app');
captureLinkToken();
// before sign-in, the browser's language; the user's own choice once signed in (session.ts)
setLanguage(browserLanguage());
document.documentElement.lang = browserLanguage();
if (root) {
  root.textContent = '';
  render(<App />, root);
}
