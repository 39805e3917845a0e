//! Writes an rpmdb for `.rpm` files, in the order given, then lists it back.
//!
//! `cargo run -p strata-rpmdb --example write_rpmdb -- ROOT/var/lib/rpm/rpmdb.sqlite 1700000000 a.rpm b.rpm`

use strata_rpmdb::{read_installed, write_rpmdb, InstallOptions, InstalledPackage};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, time, rpms @ ..] = args.as_slice() else {
        return Err("usage: write_rpmdb DB INSTALL_TIME RPM...".into());
    };
    let packages = rpms
        .iter()
        .map(|p| InstalledPackage::from_rpm_file(p.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    write_rpmdb(db.as_ref(), &packages, &InstallOptions::at(time.parse()?))?;
    for record in read_installed(db.as_ref())? {
        println!("{}\t{}", record.hnum, record.nevra);
    }
    Ok(())
}
