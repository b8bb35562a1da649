// `npm run build` writes the UI the daemon serves at /ui/ into ../ui (committed: pip install needs no node).
import { defineConfig } from 'vite'

export default defineConfig({
  base: '/ui/',
  build: {
    outDir: '../ui',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 1000,
  },
  worker: { format: 'es' },
})
