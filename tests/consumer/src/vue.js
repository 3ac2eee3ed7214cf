import init from "tessera";
import { createApp } from "vue";
import App from "./vue/App.vue";

await init();
const app = createApp(App);
app.mount("#app");
// The test unmounts the app to check that the composable disposed its session.
window.unmountApp = () => app.unmount();
