//! `archive save ROOT OUT NAME…` / `archive load ROOT IN` — save/load against a store, for
//! checking archives against `docker save`/`docker load` by hand.

use berth_image::{ImageStore, RegistryConfig};

fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    match a.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["save", root, out, names @ ..] => {
            let s = ImageStore::open(root.as_ref(), RegistryConfig::default())?;
            let mut f = std::fs::File::create(out)?;
            s.save(names, &mut f)?;
        }
        ["load", root, input] => {
            let s = ImageStore::open(root.as_ref(), RegistryConfig::default())?;
            for rec in s.load(&mut std::fs::File::open(input)?)? {
                println!("Loaded image: {} {:?}", rec.id, rec.repo_tags);
            }
        }
        _ => anyhow::bail!("usage: archive save ROOT OUT NAME… | archive load ROOT IN"),
    }
    Ok(())
}
