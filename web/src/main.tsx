/** Entry point of the lipcert web page (built by Vite into dist/web, served at /app). */
import { render } from 'preact';
import { App } from './app';
import './styles.css';

render(<App />, document.getElementById('app')!);
