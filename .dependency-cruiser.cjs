// The layering in DESIGN.md, enforced in CI: cli and daemon call drills, pipeline and catalog; those call sources,
// storage and safety; nothing calls back up. config, errors, secret and version are shared leaves.
const lower = "^src/(sources|storage|safety)/";
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", from: {}, to: { circular: true } },
    {
      name: "lower-layers-stay-low",
      comment: "sources, storage and safety never import the layers that use them",
      severity: "error",
      from: { path: lower },
      to: { path: "^src/(pipeline|catalog|drills|daemon|cli)/" },
    },
    {
      name: "middle-layers-never-call-up",
      comment: "drills, pipeline and catalog are called by cli and daemon, never the other way",
      severity: "error",
      from: { path: "^src/(pipeline|catalog|drills)/" },
      to: { path: "^src/(cli|daemon)/" },
    },
    {
      name: "catalog-below-pipeline",
      comment: "the catalog reads the format; pipeline and drills build on it",
      severity: "error",
      from: { path: "^src/catalog/" },
      to: { path: "^src/(pipeline|drills)/" },
    },
    {
      name: "pipeline-below-drills",
      severity: "error",
      from: { path: "^src/pipeline/" },
      to: { path: "^src/drills/" },
    },
    {
      name: "daemon-does-not-use-cli",
      severity: "error",
      from: { path: "^src/daemon/" },
      to: { path: "^src/cli/" },
    },
    {
      name: "config-is-a-leaf",
      comment: "config may use only safety rules and the shared leaves",
      severity: "error",
      from: { path: "^src/config/" },
      to: { path: "^src/(sources|storage|pipeline|catalog|drills|daemon|cli)/" },
    },
    {
      name: "library-has-no-cli",
      severity: "error",
      from: { path: "^src/index\\.ts$" },
      to: { path: "^src/cli/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "\\.test\\.ts$" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
