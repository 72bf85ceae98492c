import { render } from 'preact';
import './styles.css';
import { App } from './app.js';
import { captureLinkToken } from './router.js';

const root = document.getElementById('app');
captureLinkToken();
if (root) {
  root.textContent = '';
  render(<App />, root);
}
