import init from "tessera";
import { mount, unmount } from "svelte";
import App from "./svelte/App.svelte";

await init();
const app = mount(App, { target: document.getElementById("app") });
// The test unmounts the app to check that the store disposed its session.
window.unmountApp = () => unmount(app);
