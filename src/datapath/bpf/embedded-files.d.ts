/** Files imported `with { type: "file" }` resolve to a path (in Bun's embedded FS when compiled). */
declare module "*.so" {
  const path: string;
  export default path;
}
